"""The synchronous flow: a service provider sends the user here with a template to apply; the
user signs in, sees what will change, and confirms."""
