"""Widgets of the app grouped by what they show, apart from the screens that place them."""
