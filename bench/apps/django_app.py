"""A one-file Django project with a JSON view and Django's default
middleware stack (what `startproject` generates, minus sessions and auth,
which need a database)."""

import django
from django.conf import settings
from django.http import JsonResponse
from django.urls import path

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-only-not-secret",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ],
    USE_TZ=True,
)
django.setup()


def json_view(request):
    return JsonResponse({"message": "Hello, world!", "items": [1, 2, 3],
                         "query": request.GET.get("q")})


urlpatterns = [path("json", json_view)]

from django.core.wsgi import get_wsgi_application  # noqa: E402

app = get_wsgi_application()
