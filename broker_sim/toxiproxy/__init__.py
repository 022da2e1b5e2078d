"""A Toxiproxy 2.x compatible control plane (sans-IO) over Warren's toxics."""
