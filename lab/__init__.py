"""The embedded lab: stand-ins for the platform's servers, each its own process under one supervisor."""
