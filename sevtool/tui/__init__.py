"""The Textual workbench: one app (`create_app`) shared by `sevtool`, `sevtool demo` and the tests."""
