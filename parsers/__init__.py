"""Pure parsing: raw mail bytes in, plain values out. No database, no network, no raising."""
