"""The PostgreSQL store: results, dead letters and the checkpoint in one database that
several processes write (consumer-group members, on any machine) and serve from."""
