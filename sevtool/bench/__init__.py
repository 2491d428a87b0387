"""`python -m sevtool.bench`: sevtool's commands, run as a user runs them, beside what a DBA would run instead.

Builds a seeded exposure in a throwaway PostgreSQL that commits durably, as a warehouse does (see
pgtemp.DURABLE_COMMITS), and times whole processes, start to exit, each with its own peak RSS:
`sevtool scan`, `verify`, `revoke --plan`, `--apply`, `--undo` and `postmortem`, against the strongest
alternatives run through psql in the same rounds (see `alternatives`). Then the growth table: the same
commands at other sizes, time per table. Each measure is taken `--rounds` times; figures are medians and
every round is shown, because these machines are shared and one run can land on someone else's burst.
"""
