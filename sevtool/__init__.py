"""sevtool: incident-response workbench for data-exposure incidents."""

__version__ = "0.1.0"
