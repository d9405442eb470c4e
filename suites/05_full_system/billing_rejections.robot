*** Settings ***
Documentation     The billing service refuses bad input with the right status, names the field, and writes nothing.
...
...               Each row builds a small world of its own (a site with a customer, a package, routers, vouchers
...               in every state and a completed payment), snapshots the site's rows in the database, makes
...               one bad request, and checks the snapshot is unchanged.

Resource          ../../resources/billing.resource

Suite Setup       Connect To Billing Database
Suite Teardown    Disconnect From Billing Database
Test Template     Billing Should Refuse And Write Nothing

Test Tags         billing    realstack    bad-input


*** Variables ***
${UNKNOWN_ID}    2147480000


*** Test Cases ***    ATTEMPT    STATUS    FIELD
Zero Amount Is Refused
    Top Up A Zero Amount    422    amount
Negative Amount Is Refused
    Top Up A Negative Amount    422    amount
Unknown Customer Is Refused
    Pay For An Unknown Customer    404    customer_id
Unknown Package Is Refused
    Issue A Voucher For An Unknown Package    404    package_id
Unknown Router Is Refused
    Start A Session On An Unknown Router    404    router_id
Completing A Payment Twice Is Refused
    Complete The Paid Payment Again    409    status
Unpaid Voucher Cannot Start A Session
    Start A Session With The Unpaid Voucher    409    voucher_id
Expired Voucher Cannot Start A Session
    Start A Session With The Expired Voucher    409    voucher_id
Offline Router Cannot Start A Session
    Start A Session On The Offline Router    409    router_id
Duplicate Email Is Refused
    Sign Up With A Taken Email    409    email
Duplicate Phone Is Refused
    Sign Up With A Taken Phone    409    phone
Malformed Phone Is Refused
    Sign Up With A Malformed Phone    422    phone
Wrong Amount For A Voucher Is Refused
    Pay The Wrong Price For A Voucher    422    amount
Empty Wallet Cannot Pay
    Pay A Voucher From An Empty Wallet    422    amount
Missing Admin Token Is Refused
    Call Without The Admin Token    401    authorization
Payment Failing Half Way Leaves Nothing Behind
    [Tags]    lab-only    -realstack
    Complete A Payment That Fails Half Way    500    NONE
Paying Twice With The Same Idempotency Key Returns The First Payment
    [Documentation]    The same idempotency key again answers with the first payment and writes nothing.
    [Template]    NONE
    ${world}=    A Billing World
    ${first}=    Create Payment    ${world}[customer][id]    15.00    card    idempotency_key=${world}[site]-twice
    ${before}=    Billing Rows Of Site    ${world}[site]
    ${second}=    Create Payment    ${world}[customer][id]    15.00    card    idempotency_key=${world}[site]-twice
    Dictionaries Should Be Equal    ${first}    ${second}
    Billing Rows Of Site Should Be Unchanged    ${world}[site]    ${before}


*** Keywords ***
Billing Should Refuse And Write Nothing
    [Documentation]    Runs ``attempt`` against a fresh world: it must be refused and leave the rows as they were.
    ...    ``field`` is the field the API must name (``NONE``: any).
    [Arguments]    ${attempt}    ${status}    ${field}
    ${world}=    A Billing World
    ${before}=    Billing Rows Of Site    ${world}[site]
    Billing Should Reject    ${status}    ${field}    ${attempt}    ${world}
    Billing Rows Of Site Should Be Unchanged    ${world}[site]    ${before}

A Billing World
    [Documentation]    A site with a customer, a 30.00 package, an online and an offline router, and vouchers in
    ...    every state (see `Vouchers In Every State`).
    ${site}=    A New Site
    ${customer}=    A Customer Signs Up    ${site}
    ${package}=    A Package Is On Sale    ${site}    price=30.00
    ${router}=    An Online Router    ${site}
    ${offline}=    An Offline Router    ${site}
    ${world}=    Vouchers In Every State    ${customer}    ${package}
    Set To Dictionary    ${world}    site=${site}    customer=${customer}    package=${package}    router=${router}
    ...    offline=${offline}
    RETURN    ${world}

Vouchers In Every State
    [Documentation]    An unused voucher with a pending payment, a sold voucher with its completed payment, and an
    ...    expired voucher, all for ``customer``.
    [Arguments]    ${customer}    ${package}
    ${unused}=    A Voucher Is Issued    ${package}    ${customer}
    ${sold}=    Customer Buys Package With Voucher    ${customer}    ${package}
    ${expired}=    Customer Buys Package With Voucher    ${customer}    ${package}
    Expire Voucher    ${expired}[voucher][id]
    ${pending}=    Create Payment    ${customer}[id]    30.00    mpesa    voucher_id=${unused}[id]
    ...    idempotency_key=${package}[site]-pending
    VAR    &{vouchers}=    unused=${unused}    sold=${sold}[voucher]    payment=${sold}[payment]
    ...    expired=${expired}[voucher]    pending=${pending}
    RETURN    ${vouchers}

An Offline Router
    [Documentation]    A router at ``site`` that is registered but offline.
    [Arguments]    ${site}
    ${router}=    An Online Router    ${site}
    ${router}=    Set Router Status    ${router}[id]    offline
    RETURN    ${router}

Top Up A Zero Amount
    [Documentation]    A top-up of 0.00.
    [Arguments]    ${world}
    Create Payment    ${world}[customer][id]    0.00    card    idempotency_key=${world}[site]-zero

Top Up A Negative Amount
    [Documentation]    A top-up of -5.00.
    [Arguments]    ${world}
    Create Payment    ${world}[customer][id]    -5.00    card    idempotency_key=${world}[site]-negative

Pay For An Unknown Customer
    [Documentation]    A payment for a customer id that names nobody.
    [Arguments]    ${world}
    Create Payment    ${UNKNOWN_ID}    10.00    card    idempotency_key=${world}[site]-unknown

Issue A Voucher For An Unknown Package
    [Documentation]    A voucher for a package id that names nothing.
    [Arguments]    ${world}
    Create Voucher    ${UNKNOWN_ID}    customer_id=${world}[customer][id]

Start A Session On An Unknown Router
    [Documentation]    A session on a router id that names nothing.
    [Arguments]    ${world}
    Activate Session    ${world}[sold][id]    ${UNKNOWN_ID}

Complete The Paid Payment Again
    [Documentation]    Completing a payment that is already completed.
    [Arguments]    ${world}
    Complete Payment    ${world}[payment][id]

Start A Session With The Unpaid Voucher
    [Documentation]    A session from a voucher nobody paid for.
    [Arguments]    ${world}
    Activate Session    ${world}[unused][id]    ${world}[router][id]

Start A Session With The Expired Voucher
    [Documentation]    A session from a paid voucher that has expired.
    [Arguments]    ${world}
    Activate Session    ${world}[expired][id]    ${world}[router][id]

Start A Session On The Offline Router
    [Documentation]    A session from a paid voucher on an offline router.
    [Arguments]    ${world}
    Activate Session    ${world}[sold][id]    ${world}[offline][id]

Sign Up With A Taken Email
    [Documentation]    A second customer with the first one's email.
    [Arguments]    ${world}
    ${phone}=    Get Unique Phone Number
    Create Customer    Copycat    ${world}[customer][email]    ${phone}    site=${world}[site]

Sign Up With A Taken Phone
    [Documentation]    A second customer with the first one's phone number.
    [Arguments]    ${world}
    ${email}=    Get Unique Email    copycat
    Create Customer    Copycat    ${email}    ${world}[customer][phone]    site=${world}[site]

Sign Up With A Malformed Phone
    [Documentation]    A customer whose phone number is not E.164.
    [Arguments]    ${world}
    ${email}=    Get Unique Email    typo
    Create Customer    Typo    ${email}    0700-CALL-ME    site=${world}[site]

Pay The Wrong Price For A Voucher
    [Documentation]    A voucher payment of 29.99 for a 30.00 package.
    [Arguments]    ${world}
    Create Payment    ${world}[customer][id]    29.99    mpesa    voucher_id=${world}[unused][id]
    ...    idempotency_key=${world}[site]-wrong-price

Pay A Voucher From An Empty Wallet
    [Documentation]    A wallet payment from a balance of 0.00.
    [Arguments]    ${world}
    Create Payment    ${world}[customer][id]    30.00    wallet    voucher_id=${world}[unused][id]
    ...    idempotency_key=${world}[site]-wallet

Call Without The Admin Token
    [Documentation]    Any call without the admin bearer token.
    [Arguments]    ${world}
    ${saved}=    Use Billing Token    ${EMPTY}
    TRY
        Get Customer    ${world}[customer][id]
    FINALLY
        Use Billing Token    ${saved}
    END

Complete A Payment That Fails Half Way
    [Documentation]    Completing the pending payment while the lab service fails after writing the invoice.
    [Arguments]    ${world}
    Complete Payment    ${world}[pending][id]    inject_fault=after-invoice
