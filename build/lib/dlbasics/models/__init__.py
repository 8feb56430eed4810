"""Networks, one file per architecture family; each holds only its network."""
