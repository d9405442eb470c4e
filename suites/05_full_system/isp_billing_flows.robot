*** Settings ***
Documentation     The five ISP billing flows of the integration plan (plan 000), end to end through the billing API.
...
...               Each flow also reads the billing database to prove it agrees with the API, and checks the
...               plan's "< 2 s per operation" criterion for every call it made (the timings are in the log).
...               Every test makes its own site, customers, packages and routers, so they run in parallel.

Resource          ../../resources/billing.resource

Suite Setup       Connect To Billing Database
Suite Teardown    Disconnect From Billing Database

Test Tags         billing    realstack


*** Test Cases ***
Complete Customer Journey From Registration To Active Session
    [Documentation]    Registration -> package selection -> voucher purchase -> payment -> session activation.
    [Tags]    isp-flow-1
    ${site}=    A New Site
    ${customer}=    A Customer Signs Up    ${site}
    ${package}=    A Package Is On Sale    ${site}
    Package Should Be Available At Site    ${package}
    ${router}=    An Online Router    ${site}
    ${purchase}=    Customer Buys Package With Voucher    ${customer}    ${package}
    ${session}=    Customer Starts Session On Router    ${purchase}[voucher]    ${router}
    Session Should Be Active On Router    ${session}    ${router}
    Session Should Agree With Database    ${session}    ${router}
    Every Billing Operation Should Be Within The Plan's Limit

Paying For A Voucher Issues An Invoice
    [Documentation]    Package exists -> voucher created -> payment processed -> invoice generated.
    [Tags]    isp-flow-2
    ${site}=    A New Site
    ${customer}=    A Customer Signs Up    ${site}
    ${package}=    A Package Is On Sale    ${site}    price=75.50
    ${voucher}=    A Voucher Is Issued    ${package}    ${customer}
    ${payment}=    Customer Pays For Voucher    ${customer}    ${voucher}    ${package}
    Invoice Should Have Been Issued For    ${payment}
    Get Payment Status    ${payment}[id]    ==    completed
    Payment Should Agree With Database    ${payment}
    Every Billing Operation Should Be Within The Plan's Limit

Top-Up Is Recorded In The Ledger And The Balance
    [Documentation]    Customer makes a payment -> transaction recorded -> balance updated -> history updated.
    [Tags]    isp-flow-3
    ${customer}=    A Customer Signs Up    ${{ None }}
    ${before}=    Get Customer Balance    ${customer}[id]
    ${payment}=    Customer Tops Up Balance    ${customer}    120.25
    ${ledger}=    Get Transactions For Payment    ${payment}[id]
    Should Be Equal    ${ledger}[0][amount]    120.25
    Balance Should Have Changed By    ${customer}    ${before}    120.25
    Payment History Should Include    ${customer}    ${payment}
    Payment Should Agree With Database    ${payment}
    Every Billing Operation Should Be Within The Plan's Limit

Session On A Router Is Linked To The Customer
    [Documentation]    Router configured -> session created for a customer -> linked to the router -> router updated.
    [Tags]    isp-flow-4
    ${site}=    A New Site
    ${router}=    An Online Router    ${site}
    ${purchase}=    A Customer Holds A Paid Voucher    ${site}
    ${session}=    Customer Starts Session On Router    ${purchase}[voucher]    ${router}
    Should Be Equal As Integers    ${session}[customer_id]    ${purchase}[payment][customer_id]
    Session Should Be Active On Router    ${session}    ${router}
    Get Router Active Sessions    ${router}[id]    ==    1
    Session Should Agree With Database    ${session}    ${router}
    Every Billing Operation Should Be Within The Plan's Limit

Dashboard Aggregates Every Module
    [Documentation]    Admin dashboard: customers, packages, payments, vouchers and sessions, equal to the SQL figures.
    [Tags]    isp-flow-5
    ${site}=    A Site With Billing Activity
    Dashboard Should Refuse Anonymous Access
    Get Dashboard Figure    customers.total    ==    2    site=${site}
    Get Dashboard Figure    vouchers.redeemed    ==    1    site=${site}
    Get Dashboard Figure    payments.completed    ==    2    site=${site}
    Get Dashboard Figure    sessions.active    ==    1    site=${site}
    Get Dashboard Figure    revenue    ==    100.00    site=${site}
    Dashboard Should Match Database    ${site}
    Every Billing Operation Should Be Within The Plan's Limit


*** Keywords ***
A Site With Billing Activity
    [Documentation]    Two customers who each bought a 50.00 package, one session, and one failed payment.
    ${site}=    A New Site
    ${package}=    A Package Is On Sale    ${site}    price=50.00
    ${router}=    An Online Router    ${site}
    ${ann}=    A Customer Signs Up    ${site}    Ann
    ${bob}=    A Customer Signs Up    ${site}    Bob
    ${first}=    Customer Buys Package With Voucher    ${ann}    ${package}
    Customer Buys Package With Voucher    ${bob}    ${package}
    Customer Starts Session On Router    ${first}[voucher]    ${router}
    A Card Payment Is Declined    ${bob}
    RETURN    ${site}

A Card Payment Is Declined
    [Documentation]    The customer tries to top up 10.00 by card and the payment fails.
    [Arguments]    ${customer}
    ${payment}=    Create Payment    ${customer}[id]    10.00    card
    ${payment}=    Fail Payment    ${payment}[id]    card declined
    RETURN    ${payment}
