// KafkaJS 2.2.4, Retry (https://kafka.js.org/docs/retry-detailed: restartOnFailure) and error
// classes (KafkaJSError and its subclasses).
// Changed: the import (the error classes from the global), the constructor; a handler that
// fails twice, so the crash and the restart are seen.
const { KafkaJSError, KafkaJSNonRetriableError, KafkaJSNumberOfRetriesExceeded } = Letterbox
const kafka = new Letterbox({ clientId: 'my-app' })
const producer = kafka.producer()
try {
    await producer.send({ topic: 'retry-topic', messages: [{ value: 'x' }] })
} catch (e) {
    console.log(`not connected: ${e instanceof KafkaJSError} ${e.retriable}`)
}
await producer.connect()
await producer.send({ topic: 'retry-topic', messages: [{ value: 'v1' }] })

const consumer = kafka.consumer({
    groupId: 'retry-group',
    retry: {
        retries: 0,
        initialRetryTime: 100,
        restartOnFailure: async (error) => {
            console.log(`restartOnFailure: ${error.message}`)
            return true
        },
    },
})
let failures = 0
await consumer.connect()
await consumer.subscribe({ topics: ['retry-topic'], fromBeginning: true })
await consumer.run({
    eachMessage: async ({ message }) => {
        if (failures++ < 2) throw new Error(`failure ${failures}`)
        console.log(`processed ${message.value.toString()}`)
    },
})
