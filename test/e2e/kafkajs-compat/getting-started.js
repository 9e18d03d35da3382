// KafkaJS 2.2.4, Getting Started (README and https://kafka.js.org/docs/getting-started).
// Changed: the import (the script tag's global `Letterbox`) and the constructor (no brokers).
// The topic does not exist beforehand: the producer creates it, as Kafka's brokers do by default.
const kafka = new Letterbox({ clientId: 'my-app' })

const producer = kafka.producer()
const consumer = kafka.consumer({ groupId: 'test-group' })

const run = async () => {
  // Producing
  await producer.connect()
  await producer.send({
    topic: 'test-topic',
    messages: [
      { value: 'Hello KafkaJS user!' },
    ],
  })

  // Consuming
  await consumer.connect()
  await consumer.subscribe({ topic: 'test-topic', fromBeginning: true })

  await consumer.run({
    eachMessage: async ({ topic, partition, message }) => {
      console.log({
        partition,
        offset: message.offset,
        value: message.value.toString(),
      })
    },
  })
}

run().catch(console.error)
