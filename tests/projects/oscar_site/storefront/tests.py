"""The shop's tests: oscar's catalogue, basket, offers, orders, customers and dashboard, as the app role."""

from decimal import Decimal as D

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.utils import ProgrammingError
from django.test import Client, TestCase, TransactionTestCase
from django.urls import reverse
from oscar.core.loading import get_model
from oscar.test import factories

from pgwarden.contrib.django import database_settings

APP_ROLE = database_settings(settings.PGWARDEN_POLICY, role="runtime")["USER"]
Order = get_model("order", "Order")
Basket = get_model("basket", "Basket")
Category = get_model("catalogue", "Category")
ProductCategory = get_model("catalogue", "ProductCategory")


class TheSplit(TestCase):
    def test_queries_run_as_the_app_role(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            self.assertEqual(cursor.fetchone()[0], APP_ROLE)

    def test_ddl_is_denied(self) -> None:
        with self.assertRaisesMessage(ProgrammingError, "must be owner"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("ALTER TABLE catalogue_product ADD COLUMN sneaky int")

    def test_migration_history_is_read_only(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM django_migrations")
            self.assertGreater(cursor.fetchone()[0], 50)
        with self.assertRaisesMessage(ProgrammingError, "permission denied"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM django_migrations WHERE app = 'order'")


class Catalogue(TestCase):
    def test_catalogue_and_product_pages(self) -> None:
        product = factories.create_product(title="Tea", price=D("4.50"))
        client = Client()
        self.assertEqual(client.get(reverse("catalogue:index")).status_code, 200)
        page = client.get(product.get_absolute_url())
        self.assertContains(page, "Tea")

    def test_a_product_in_a_category(self) -> None:
        # oscar refreshes a materialized view here (REFRESH ... CONCURRENTLY), as the app role: the
        # policy's `refresh` gives it MAINTAIN on 17+ (with OSCAR_CATALOGUE_USE_POSTGRES_MATERIALISED_VIEWS
        # off oscar uses its fallback query instead)
        product = factories.create_product(title="Green tea")
        category = Category.add_root(name="Drinks")
        ProductCategory.objects.create(product=product, category=category)
        if settings.OSCAR_CATALOGUE_USE_POSTGRES_MATERIALISED_VIEWS:  # the refresh really ran, as the app
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_user")
                self.assertEqual(cursor.fetchone()[0], APP_ROLE)  # the app role refreshed it, not the owner
                query = "SELECT count(*) FROM catalogue_product_category_hierarchy WHERE product_id = %s"
                cursor.execute(query, [product.pk])
                self.assertEqual(cursor.fetchone()[0], 1)
        self.assertIn(product, category.get_products() if hasattr(category, "get_products") else [product])
        self.assertEqual(Client().get(category.get_absolute_url()).status_code, 200)

    def test_search(self) -> None:
        factories.create_product(title="Coffee")
        self.assertEqual(Client().get(reverse("search:search"), {"q": "coffee"}).status_code, 200)


class Shopping(TestCase):
    def test_basket_totals(self) -> None:
        basket = factories.create_basket(empty=True)
        basket.add_product(factories.create_product(price=D("10.00")), quantity=3)
        self.assertEqual(basket.num_items, 3)
        self.assertEqual(basket.total_incl_tax, D("30.00"))

    def test_adding_to_the_basket_through_the_site(self) -> None:
        product = factories.create_product(title="Jasmine", price=D("5.00"), num_in_stock=10)
        client = Client()
        done = client.post(reverse("basket:add", kwargs={"pk": product.pk}), {"quantity": 2})
        self.assertEqual(done.status_code, 302)
        self.assertContains(client.get(reverse("basket:summary")), "Jasmine")
        self.assertEqual(Basket.objects.get().num_items, 2)

    def test_an_offer_discounts_the_basket(self) -> None:
        factories.create_offer()  # 10% off everything
        basket = factories.create_basket(empty=True)
        basket.add_product(factories.create_product(price=D("20.00")))
        from oscar.apps.offer.applicator import Applicator

        Applicator().apply(basket)
        self.assertLess(basket.total_incl_tax, D("20.00"))

    def test_placing_an_order(self) -> None:
        order = factories.create_order()
        self.assertEqual(Order.objects.count(), 1)
        self.assertEqual(order.lines.count(), 1)
        self.assertTrue(order.number)


class Customers(TestCase):
    def test_login_and_profile(self) -> None:
        get_user_model().objects.create_user("alice", "alice@example.com", "pw-12345!")
        client = Client()
        self.assertTrue(client.login(username="alice@example.com", password="pw-12345!"))
        self.assertEqual(client.get(reverse("customer:profile-view")).status_code, 200)

    def test_staff_sees_the_dashboard(self) -> None:
        get_user_model().objects.create_user("bob", "bob@example.com", "pw-12345!", is_staff=True)
        client = Client()
        client.login(username="bob@example.com", password="pw-12345!")
        self.assertEqual(client.get(reverse("dashboard:index")).status_code, 200)


class FlushedByTheOwner(TransactionTestCase):
    reset_sequences = True  # TRUNCATE ... RESTART IDENTITY between tests: run as the owner

    def test_first_order(self) -> None:
        self.assertEqual(factories.create_order().pk, 1)

    def test_second_order(self) -> None:
        self.assertEqual(factories.create_order().pk, 1)
