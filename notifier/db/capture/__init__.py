"""Capture: database triggers that write notifier's event rows from changes in the shop's own
tables, in the shop's own transaction (README: Capture: events from the shop's own tables).

    columns.py     the shop's tables and columns as the database has them, checked against the mapping
    dialect.py     what the three databases' triggers share: the condition and the event row
    sqlite.py      SQLite's triggers
    postgresql.py  PostgreSQL's: a plpgsql function and a trigger per entry
    mysql.py       MySQL's and MariaDB's
    triggers.py    names, digests, and install / check / remove
"""
