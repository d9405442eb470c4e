*** Settings ***
Documentation     Subscribers' replies (MO) reach the customer's bind; messages sent over the gateway's HTTP API
...               report their acceptance and delivery to the customer's webhook.

Resource          ../../resources/sms.resource

Suite Setup       Connect To The SMS Platform
Suite Teardown    Disconnect From The SMS Platform
Test Setup        Customer Binds To The SMS Gateway
Test Teardown     Disconnect From The SMS Platform

Test Tags         smpp    realstack


*** Variables ***
${LONG_REPLY}    ${{ "Спасибо за звонок! " * 8 }}


*** Test Cases ***
Subscriber Reply Reaches The Customer's Receiver Bind
    [Documentation]    An MO SMS to the customer's number reaches a receiver bind of the customer.
    Customer Binds To The SMS Gateway    receiver    alias=receiver
    ${customer}=    The Customer's Number
    ${subscriber}=    A Subscriber Number
    Subscriber Replies    ${subscriber}    ${customer}    STOP ads please
    Customer Should Receive SMS    ${subscriber}    STOP ads please

Long Unicode Reply Is Reassembled
    [Documentation]    A three-part UCS2 MO SMS arrives as one message, decoded.
    ${customer}=    The Customer's Number
    ${subscriber}=    A Subscriber Number
    Subscriber Replies    ${subscriber}    ${customer}    ${LONG_REPLY}
    ${sms}=    Customer Should Receive SMS    ${subscriber}    ${LONG_REPLY}
    Should Be Equal As Integers    ${sms}[parts]    3

Message Sent Over HTTP Reports Acceptance And Delivery To The Webhook
    [Documentation]    HTTP /send with dlr-level 3: the carrier gets it, the webhook gets level 1 then level 2.
    ${webhook}=    Start Webhook Receiver    alias=receipts
    ${recipient}=    A Subscriber Number
    ${id}=    Customer Sends SMS Over HTTP    ACME    ${recipient}    Your code is 4321    ${webhook}
    The Carrier Should Have Received    ${recipient}    Your code is 4321    gsm7    1
    Wait Until Webhook Received    id=${id}    level=1    message_status=ESME_ROK
    Wait Until Webhook Received    id=${id}    level=2    message_status=DELIVRD
