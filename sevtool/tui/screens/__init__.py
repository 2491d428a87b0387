"""Full screens: the incident list, one incident, and the modal forms and help over them."""
