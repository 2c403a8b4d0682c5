"""pgwarden's benchmark suite: big catalogs on a throwaway server, measured against the floor."""
