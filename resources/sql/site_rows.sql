-- Every row that belongs to one site (counts, statuses, money): a snapshot to prove a refused
-- request wrote nothing. Column order = @{SITE_ROWS_FIGURES} in billing.resource; {site} is replaced.
SELECT
(SELECT COUNT(*) FROM customers WHERE site = '{site}'),
(SELECT COUNT(*) FROM packages WHERE site = '{site}'),
(SELECT COUNT(*) FROM vouchers v JOIN packages p ON p.id = v.package_id WHERE p.site = '{site}'),
(SELECT COUNT(*) FROM vouchers v JOIN packages p ON p.id = v.package_id
    WHERE p.site = '{site}' AND v.status = 'sold'),
(SELECT COUNT(*) FROM vouchers v JOIN packages p ON p.id = v.package_id
    WHERE p.site = '{site}' AND v.status = 'redeemed'),
(SELECT COUNT(*) FROM payments y JOIN customers c ON c.id = y.customer_id WHERE c.site = '{site}'),
(SELECT COUNT(*) FROM payments WHERE idempotency_key LIKE '{site}%'),
(SELECT COUNT(*) FROM payments y JOIN customers c ON c.id = y.customer_id
    WHERE c.site = '{site}' AND y.status = 'completed'),
(SELECT COUNT(*) FROM invoices i JOIN customers c ON c.id = i.customer_id WHERE c.site = '{site}'),
(SELECT COUNT(*) FROM transactions t JOIN customers c ON c.id = t.customer_id WHERE c.site = '{site}'),
(SELECT COUNT(*) FROM sessions s JOIN routers r ON r.id = s.router_id WHERE r.site = '{site}'),
(SELECT COUNT(*) FROM routers WHERE site = '{site}'),
(SELECT COUNT(*) FROM routers WHERE site = '{site}' AND status = 'online'),
(SELECT COALESCE(SUM(b.balance_cents), 0) FROM balances b JOIN customers c ON c.id = b.customer_id
    WHERE c.site = '{site}')

