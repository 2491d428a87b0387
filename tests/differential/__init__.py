"""The server-as-oracle differential test: random worlds, PostgreSQL as the judge, sevtool compared with it."""
