"""PlatformLibrary's keyword components, one per domain of the platform API."""
