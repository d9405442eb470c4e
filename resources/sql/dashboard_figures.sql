-- The dashboard's figures of one site, computed straight from the billing tables.
-- Column order = @{DASHBOARD_FIGURES} in billing.resource; {site} is replaced by the site's name.
SELECT
(SELECT COUNT(*) FROM customers WHERE site = '{site}'),
(SELECT COUNT(*) FROM customers WHERE site = '{site}' AND status = 'active'),
(SELECT COUNT(*) FROM packages WHERE site = '{site}'),
(SELECT COUNT(*) FROM packages WHERE site = '{site}' AND active = TRUE),
(SELECT COUNT(*) FROM vouchers v JOIN packages p ON p.id = v.package_id WHERE p.site = '{site}'),
(SELECT COUNT(*) FROM vouchers v JOIN packages p ON p.id = v.package_id
    WHERE p.site = '{site}' AND v.status = 'unused'),
(SELECT COUNT(*) FROM vouchers v JOIN packages p ON p.id = v.package_id
    WHERE p.site = '{site}' AND v.status = 'sold'),
(SELECT COUNT(*) FROM vouchers v JOIN packages p ON p.id = v.package_id
    WHERE p.site = '{site}' AND v.status = 'redeemed'),
(SELECT COUNT(*) FROM vouchers v JOIN packages p ON p.id = v.package_id
    WHERE p.site = '{site}' AND v.status = 'expired'),
(SELECT COUNT(*) FROM payments y JOIN customers c ON c.id = y.customer_id WHERE c.site = '{site}'),
(SELECT COUNT(*) FROM payments y JOIN customers c ON c.id = y.customer_id
    WHERE c.site = '{site}' AND y.status = 'pending'),
(SELECT COUNT(*) FROM payments y JOIN customers c ON c.id = y.customer_id
    WHERE c.site = '{site}' AND y.status = 'completed'),
(SELECT COUNT(*) FROM payments y JOIN customers c ON c.id = y.customer_id
    WHERE c.site = '{site}' AND y.status = 'failed'),
(SELECT COUNT(*) FROM sessions s JOIN routers r ON r.id = s.router_id WHERE r.site = '{site}'),
(SELECT COUNT(*) FROM sessions s JOIN routers r ON r.id = s.router_id
    WHERE r.site = '{site}' AND s.status = 'active'),
(SELECT COUNT(*) FROM routers WHERE site = '{site}'),
(SELECT COUNT(*) FROM routers WHERE site = '{site}' AND status = 'online'),
(SELECT COALESCE(SUM(y.amount_cents), 0) FROM payments y JOIN customers c ON c.id = y.customer_id
    WHERE c.site = '{site}' AND y.status = 'completed')

