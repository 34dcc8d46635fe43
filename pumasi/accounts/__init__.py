"""People: sign-up and sign-in (django-allauth), profile, language, avatar."""
