SELECT id, n, name FROM widgets WHERE false;
