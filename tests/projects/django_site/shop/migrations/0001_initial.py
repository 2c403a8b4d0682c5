from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies: list = []
    operations = [
        # a real serial column next to Django's identity columns
        migrations.RunSQL("CREATE TABLE shop_legacy (id serial PRIMARY KEY, note text)", "DROP TABLE shop_legacy"),
        migrations.CreateModel("Product", [("id", models.AutoField(primary_key=True)),
                                           ("name", models.CharField(max_length=50))]),
        migrations.CreateModel("Order", [("id", models.BigAutoField(primary_key=True)),
                                         ("product", models.ForeignKey("shop.Product", on_delete=models.CASCADE))]),
    ]
