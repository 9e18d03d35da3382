// KafkaJS 2.2.4, Consuming: Pause & Resume (https://kafka.js.org/docs/consuming#pause-resume),
// the `pause()` variant of eachMessage.
// Changed: the constructor. Added, because the docs leave them to the reader: the throttled
// dependency (`sendToDependency`, refusing its first call with a retryAfter of 1 s), its
// error class, and a producer giving the consumer one job.
class TooManyRequestsError extends Error {
  constructor(retryAfter) { super('too many requests'); this.retryAfter = retryAfter }
}
let dependencyCalls = 0
const sendToDependency = async (message) => {
  dependencyCalls++
  console.log(`dependency call ${dependencyCalls} for ${message.value.toString()} at ${Date.now()}`)
  if (dependencyCalls === 1) throw new TooManyRequestsError(1)
}

const kafka = new Letterbox({ clientId: 'my-app' })
const producer = kafka.producer()
await producer.connect()
await producer.send({ topic: 'jobs', messages: [{ value: 'job-1' }] })
const consumer = kafka.consumer({ groupId: 'jobs-group' })
consumer.on(consumer.events.CRASH, (e) => console.log(`crash: ${e.payload.error.message}`))

await consumer.connect()
await consumer.subscribe({ topics: ['jobs'], fromBeginning: true })

await consumer.run({
    eachMessage: async ({ topic, message, heartbeat, pause }) => {
        try {
            await sendToDependency(message)
        } catch (e) {
            if (e instanceof TooManyRequestsError) {
                const resumeThisPartition = pause()
                // Other partitions will keep fetching and processing, until if / when
                // they also get throttled
                setTimeout(resumeThisPartition, e.retryAfter * 1000)
            }

            // Throwing the error will cause the partition to be re-processed
            // after the timeout.
            throw e
        }
    },
})
