"""URLs: the admin and one view that writes rows as the runtime role."""

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import path
from shop.models import Order, Product


def buy(request: HttpRequest) -> JsonResponse:
    product = Product.objects.create(name="pen")
    order = Order.objects.create(product=product)
    request.session["last_order"] = order.pk
    return JsonResponse({"product": product.pk, "order": order.pk})


urlpatterns = [path("admin/", admin.site.urls), path("buy/", buy)]
