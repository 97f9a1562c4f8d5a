"""The web app's built bundle (dist/), installed as package data of `webdet.webapp`."""
