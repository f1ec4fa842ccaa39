"""Terminal views: the live demo screen and progress lines."""
