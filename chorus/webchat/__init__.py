"""The webchat page: static HTML/JS served at `/`, no build step."""
