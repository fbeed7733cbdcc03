"""Recipes: the values a run takes for every option the user left unset (fixed, or chosen from the data)."""
