"""Icons, stylesheets, example projects and the README screenshot (data only; a package so installs carry it)."""
