"""A serial key (AutoField) and an identity key (BigAutoField, identity on Django 4.1+)."""

from django.db import models


class Product(models.Model):
    id = models.AutoField(primary_key=True)
    name = models.CharField(max_length=50)


class Order(models.Model):
    id = models.BigAutoField(primary_key=True)
    product = models.ForeignKey(Product, on_delete=models.CASCADE)
