"""The gateway, one package per stage: edges -> intake -> requests -> sla -> outbound ->
directory -> storage -> core (README, Architecture)."""
