"""The material centre: materials HQ and guides contribute, their review, use, points and
what each one sold."""
