*** Settings ***
Documentation     SMS through the platform API behind the gateway (plan TEST-INT-020 to 024). Every message is
...               checked where it really arrives, at the carrier, and receipts where the customer gets them.

Resource          ../../resources/platform.resource
Resource          ../../resources/sms.resource

Suite Setup       Connect To The SMS Platform
Suite Teardown    Disconnect From The SMS Platform
Test Setup        A Platform Customer

Test Tags         kong    smpp    api    realstack


*** Test Cases ***
SMS Sent Via The API Reaches The Carrier And Is Delivered
    [Documentation]    The customer's API call becomes an SMS at the carrier, and its status turns delivered.
    [Tags]    test-int-020
    ${recipient}=    A Subscriber Number
    ${sms}=    Customer Sends SMS Via API    ${recipient}    Your order 4471 has shipped
    The Carrier Should Have Received    ${recipient}    Your order 4471 has shipped    gsm7    1
    SMS Status Should Become    ${sms}    delivered
    Every Platform Call Should Be Within The Plan's Limit

Campaign Delivers To Every Recipient
    [Documentation]    A campaign to three recipients: each gets the message, progress ends 3 of 3 delivered.
    [Tags]    test-int-021
    ${first}=    A Subscriber Number
    ${second}=    A Subscriber Number
    ${third}=    A Subscriber Number
    ${campaign}=    Customer Starts SMS Campaign    Store opens at 9 tomorrow    ${first}    ${second}    ${third}
    Campaign Should Complete    ${campaign}
    Campaign Progress Should Be    ${campaign}    total=3    delivered=3
    Carrier Should Have Received SMS    to=${third}    text=Store opens at 9 tomorrow

Template Is Rendered With Its Variables And Sent
    [Documentation]    A template renders its variables; a missing one is refused naming it; the sent SMS is rendered.
    [Tags]    test-int-022
    ${template}=    Customer Creates SMS Template    Hi {{name}}, your code is {{code}}
    Template Should Render As    ${template}    Hi Ann, your code is 7731    name=Ann    code=7731
    Missing Template Variable Should Be Refused    ${template}    name
    ${recipient}=    A Subscriber Number
    Customer Sends Templated SMS    ${recipient}    ${template}    name=Bo    code=1234
    Carrier Should Have Received SMS    to=${recipient}    text=Hi Bo, your code is 1234

Delivery Receipt Reaches The Customer's Webhook Signed
    [Documentation]    The carrier's receipt becomes an sms.delivered event at the customer's webhook, HMAC-signed.
    [Tags]    test-int-023
    ${hook}=    Customer Registers Webhook For    sms.delivered
    ${recipient}=    A Subscriber Number
    ${sms}=    Customer Sends SMS Via API    ${recipient}    Receipt please
    Customer Webhook Should Receive    ${hook}    sms.delivered    data.id=${sms}[id]

Analytics Count Sent Delivered And Failed Messages
    [Documentation]    Two delivered and one undeliverable message show in the customer's analytics.
    [Tags]    test-int-024
    ${since}=    The Time Now
    ${unreachable}=    A Number The Carrier Cannot Reach
    Customer Sends SMS Via API    ${unreachable}    will fail
    ${reachable}=    A Subscriber Number
    ${sms}=    Customer Sends SMS Via API    ${reachable}    will arrive
    SMS Status Should Become    ${sms}    delivered
    SMS Analytics Should Show At Least    failed    1    ${since}
    SMS Analytics Should Show At Least    delivered    1    ${since}
    Delivery Rate Should Be At Least    0.5    ${since}


*** Keywords ***
A Number The Carrier Cannot Reach
    [Documentation]    A subscriber number for which the carrier answers every message with an UNDELIV receipt.
    ${msisdn}=    A Subscriber Number
    Set Carrier Behaviour    dlr_state=UNDELIV    destination=${msisdn}
    RETURN    ${msisdn}
