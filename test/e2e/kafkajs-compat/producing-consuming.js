// KafkaJS 2.2.4, Producing (https://kafka.js.org/docs/producing: keys, headers) and Consuming
// (https://kafka.js.org/docs/consuming: eachMessage), joined into one program.
// Changed: the constructor; the consumer subscribes to the producer's 'topic-name' (the docs'
// snippets use unrelated topic names) with fromBeginning, so it reads what was sent.
const kafka = new Letterbox({ clientId: 'my-app' })
const producer = kafka.producer()
await producer.connect()

await producer.send({
    topic: 'topic-name',
    messages: [
        { key: 'key1', value: 'hello world' },
        { key: 'key2', value: 'hey hey!' }
    ],
})

await producer.send({
    topic: 'topic-name',
    messages: [{
        key: 'key1',
        value: 'hello world',
        headers: {
            'correlation-id': '2bfb68bb-893a-423b-a7fa-7b568cad5b67',
            'system-id': 'my-system'
        }
    }]
})

const consumer = kafka.consumer({ groupId: 'my-group' })
await consumer.connect()
await consumer.subscribe({ topics: ['topic-name'], fromBeginning: true })

await consumer.run({
    eachMessage: async ({ topic, partition, message, heartbeat, pause }) => {
        console.log({
            key: message.key.toString(),
            value: message.value.toString(),
            headers: message.headers,
        })
    },
})
