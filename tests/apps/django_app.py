"""A one-file Django project for the WSGI framework tests."""

import hashlib
import os

import django
from django.conf import settings
from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path

settings.configure(
    DEBUG=False,
    SECRET_KEY="tests-only-not-secret",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
    ],
    FILE_UPLOAD_MAX_MEMORY_SIZE=1 << 20,
    DATA_UPLOAD_MAX_MEMORY_SIZE=None,
    LOGGING_CONFIG=None,
)
django.setup()


def index(request):
    return HttpResponse("Hello from Django")


def item(request, item_id):
    return JsonResponse({"id": item_id, "q": request.GET.get("q"),
                         "script_name": request.META.get("SCRIPT_NAME")})


def upload(request):
    f = request.FILES["file"]
    data = f.read()
    return JsonResponse({"name": f.name, "field": request.POST.get("field"), "size": len(data),
                         "sha256": hashlib.sha256(data).hexdigest()})


def stream_upload(request):
    h, n = hashlib.sha256(), 0
    while True:
        piece = request.read(65536)
        if not piece:
            break
        h.update(piece)
        n += len(piece)
    return JsonResponse({"size": n, "sha256": h.hexdigest()})


def download(request):
    mb = int(request.GET.get("mb", "1"))
    return StreamingHttpResponse((bytes([i % 256]) * 65536 for i in range(mb * 16)),
                                 content_type="application/octet-stream")


def file(request):
    return FileResponse(open(os.path.abspath(__file__), "rb"), content_type="text/x-python")


def error(request):
    raise RuntimeError("django view failed")


urlpatterns = [
    path("", index),
    path("items/<int:item_id>", item),
    path("upload", upload),
    path("stream-upload", stream_upload),
    path("download", download),
    path("file", file),
    path("error", error),
]

from django.core.wsgi import get_wsgi_application  # noqa: E402

app = get_wsgi_application()
