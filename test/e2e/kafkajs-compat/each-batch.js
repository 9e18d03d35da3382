// KafkaJS 2.2.4, Consuming: eachBatch (https://kafka.js.org/docs/consuming#each-batch).
// Changed: the constructor; three messages are produced first so there is a batch to read.
const kafka = new Letterbox({ clientId: 'my-app' })
const producer = kafka.producer()
await producer.connect()
await producer.send({ topic: 'batch-topic', messages: [{ key: 'a', value: '1' }, { key: 'b', value: '2' }, { key: 'c', value: '3' }] })

const consumer = kafka.consumer({ groupId: 'batch-group' })
await consumer.connect()
await consumer.subscribe({ topics: ['batch-topic'], fromBeginning: true })

await consumer.run({
    eachBatchAutoResolve: true,
    eachBatch: async ({
        batch,
        resolveOffset,
        heartbeat,
        commitOffsetsIfNecessary,
        uncommittedOffsets,
        isRunning,
        isStale,
        pause,
    }) => {
        for (let message of batch.messages) {
            console.log({
                topic: batch.topic,
                partition: batch.partition,
                highWatermark: batch.highWatermark,
                message: {
                    offset: message.offset,
                    key: message.key.toString(),
                    value: message.value.toString(),
                    headers: message.headers,
                }
            })

            resolveOffset(message.offset)
            await heartbeat()
        }
    },
})
