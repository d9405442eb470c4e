"""KongLibrary's keyword components, one per kind of Kong entity or concern."""
