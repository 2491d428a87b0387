from sevtool.cli.main import run

run()
