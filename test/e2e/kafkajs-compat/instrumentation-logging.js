// KafkaJS 2.2.4, Instrumentation Events (https://kafka.js.org/docs/instrumentation-events) and
// Custom Logger (https://kafka.js.org/docs/custom-logger).
// Changed: the import (`logLevel` from the global), the constructor; the log creator writes its
// line with console.log, as the docs' comment suggests. Added: a producer listening to the
// events table's REQUEST ("Emitted on every network request to a broker") and REQUEST_TIMEOUT
// ("Request to a broker has timed out"), printing each payload's fields, with a send whose
// timeout passes; the broker it names is compared with the one admin.describeCluster() lists.
const { logLevel, KafkaJSRequestTimeoutError } = Letterbox

const MyLogCreator = logLevel => ({ namespace, level, label, log }) => {
    const { timestamp, logger, message, ...others } = log
    console.log(`${label} [${namespace}] ${message} ${JSON.stringify(others)}`)
}

const kafka = new Letterbox({
    clientId: 'my-app',
    logLevel: logLevel.ERROR,
    logCreator: MyLogCreator
})

const logger = kafka.logger()
logger.error('custom logger', { extra: 'data' })
logger.info('not written: below ERROR')

const consumer = kafka.consumer({ groupId: 'events-group', heartbeatInterval: 100 })
consumer.logger().error('from the consumer')
const { HEARTBEAT, GROUP_JOIN } = consumer.events
const removeListener = consumer.on(HEARTBEAT, e => console.log(`heartbeat at ${e.timestamp}`))
consumer.on(GROUP_JOIN, e => console.log(`joined ${e.payload.groupId} as leader: ${e.payload.isLeader}`))
try {
    consumer.on('consumer.no_such_event', () => {})
} catch (e) {
    console.log(`${e.name}: unknown event refused`)
}

await consumer.connect()
await consumer.subscribe({ topics: ['events-topic'] })
await consumer.run({ eachMessage: async () => {} })

const admin = kafka.admin()
await admin.connect()
const { brokers: [broker] } = await admin.describeCluster()
const producer = kafka.producer()
const { REQUEST, REQUEST_TIMEOUT } = producer.events
const describe = ({ payload }) =>
    `${payload.apiName}(key: ${payload.apiKey}, version: ${payload.apiVersion}) to the cluster's broker: ${payload.broker === `${broker.host}:${broker.port}`}, ` +
    `from ${payload.clientId}, fields ${Object.keys(payload).sort().join(' ')}`
producer.on(REQUEST, e => console.log(`request ${describe(e)}`))
producer.on(REQUEST_TIMEOUT, e => console.log(`request timeout ${describe(e)}`))
await producer.connect()
await producer.send({ topic: 'events-topic', messages: [{ value: 'hello' }] })
try {
    await producer.send({ topic: 'events-topic', timeout: 1, messages: [{ value: 'x'.repeat(500000) }] })
} catch (e) {
    console.log(`send failed: ${e instanceof KafkaJSRequestTimeoutError}`)
}
