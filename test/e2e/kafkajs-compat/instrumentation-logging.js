// KafkaJS 2.2.4, Instrumentation Events (https://kafka.js.org/docs/instrumentation-events) and
// Custom Logger (https://kafka.js.org/docs/custom-logger).
// Changed: the import (`logLevel` from the global), the constructor; the log creator writes its
// line with console.log, as the docs' comment suggests.
const { logLevel } = Letterbox

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
