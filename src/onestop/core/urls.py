from django.urls import path

from onestop.core import views

urlpatterns = [
    path("", views.home, name="home"),
]
