"""The ground floor: settings, the runtime every use-case is handed, identifiers, hours."""
