"""Standard inference protocols: request parsing and response building, no HTTP."""
