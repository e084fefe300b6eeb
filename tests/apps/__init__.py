"""Small ASGI applications served by the black-box tests."""
