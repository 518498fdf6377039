-- notifier's reference tables (SPEC §2) as views over django-oscar 4.2's own tables: PostgreSQL.
-- The same as views.sqlite.sql, in PostgreSQL's dialect: concat_ws for the address, types
-- cast where a NULL would otherwise have none. README.md here explains every choice.
-- Run it after Oscar's migrations and before `notifier init-db`,
-- which keeps these views and creates only what is missing (the event tables, cases).
-- Running it again replaces the views.

-- What Oscar lacks, supplied here:
--   locale, timezone     constants ('en', 'Europe/London'): Oscar keeps neither per customer
--   marketing_opt_in     from shop_newsletter, a table this example adds (e-mails in lower case)
--   guest customers      guest orders have no user, only guest_email: one customer per guest
--                        e-mail, with id -(its first order's id), which no auth_user id can be
--   order number         Oscar's text number ('100001') as orders.number; the integer id stays the key
--   promised_date        none in Oscar: NULL (the promise-day rule then plans nothing)

CREATE TABLE IF NOT EXISTS shop_newsletter (
    email VARCHAR(254) NOT NULL PRIMARY KEY,  -- lower case
    subscribed_at TIMESTAMP WITH TIME ZONE NOT NULL
);

DROP VIEW IF EXISTS customers;
CREATE VIEW customers AS
SELECT u.id AS id,
       u.email AS email,
       COALESCE(NULLIF(TRIM(u.first_name || ' ' || u.last_name), ''), u.username) AS name,
       CAST('en' AS TEXT) AS locale,
       CAST('Europe/London' AS TEXT) AS timezone,
       EXISTS (SELECT 1 FROM shop_newsletter n WHERE n.email = LOWER(u.email)) AS marketing_opt_in
FROM auth_user u
UNION ALL
SELECT -g.first_order AS id,
       o.guest_email AS email,
       COALESCE(TRIM(a.first_name || ' ' || a.last_name), '') AS name,
       CAST('en' AS TEXT) AS locale,
       CAST('Europe/London' AS TEXT) AS timezone,
       EXISTS (SELECT 1 FROM shop_newsletter n WHERE n.email = g.email_key) AS marketing_opt_in
FROM (SELECT LOWER(guest_email) AS email_key, MIN(id) AS first_order
      FROM order_order WHERE user_id IS NULL AND guest_email <> '' GROUP BY LOWER(guest_email)) g
JOIN order_order o ON o.id = g.first_order
LEFT JOIN order_shippingaddress a ON a.id = o.shipping_address_id;

-- A product's price is its first stock record's, as Oscar's Default strategy picks it.
DROP VIEW IF EXISTS products;
CREATE VIEW products AS
SELECT p.id AS id,
       COALESCE(NULLIF(p.upc, ''), s.partner_sku, '') AS sku,
       p.title AS name,
       COALESCE(pc.name, '') AS tags,
       COALESCE(s.price, 0) AS price,
       COALESCE(s.price_currency, '') AS currency
FROM catalogue_product p
LEFT JOIN catalogue_productclass pc ON pc.id = p.product_class_id
LEFT JOIN partner_stockrecord s
       ON s.id = (SELECT MIN(id) FROM partner_stockrecord WHERE product_id = p.id);

DROP VIEW IF EXISTS orders;
CREATE VIEW orders AS
SELECT o.id AS id,
       o.number AS number,
       COALESCE(o.user_id,
                -(SELECT MIN(f.id) FROM order_order f
                  WHERE f.user_id IS NULL AND LOWER(f.guest_email) = LOWER(o.guest_email))) AS customer_id,
       o.date_placed AS placed_at,
       o.status AS status,
       o.total_incl_tax AS total,
       o.currency AS currency,
       COALESCE(TRIM(a.first_name || ' ' || a.last_name), '') AS ship_to_name,
       concat_ws(E'\n', NULLIF(a.line1, ''), NULLIF(a.line2, ''), NULLIF(a.line3, ''), NULLIF(a.line4, ''),
                 NULLIF(TRIM(a.state || ' ' || a.postcode), ''), c.printable_name) AS ship_to_address,
       CAST(NULL AS DATE) AS promised_date
FROM order_order o
LEFT JOIN order_shippingaddress a ON a.id = o.shipping_address_id
LEFT JOIN address_country c ON c.iso_3166_1_a2 = a.country_id;

-- Oscar keeps a line's unit price unless it could not work one out; then the line's price
-- over its quantity. A line whose product was deleted since keeps product_id 0 here.
DROP VIEW IF EXISTS order_items;
CREATE VIEW order_items AS
SELECT l.id AS id,
       l.order_id AS order_id,
       COALESCE(l.product_id, 0) AS product_id,
       l.quantity AS quantity,
       COALESCE(l.unit_price_incl_tax, l.line_price_incl_tax / NULLIF(l.quantity, 0), 0) AS unit_price
FROM order_line l;
