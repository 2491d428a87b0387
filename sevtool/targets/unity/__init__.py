"""Unity Catalog target over its REST API."""
