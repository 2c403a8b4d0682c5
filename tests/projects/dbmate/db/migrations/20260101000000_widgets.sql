-- migrate:up
CREATE TABLE widgets (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, n serial, name text NOT NULL);

-- migrate:down
DROP TABLE widgets;
