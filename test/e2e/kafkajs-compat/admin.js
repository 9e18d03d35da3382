// KafkaJS 2.2.4, Admin Client (https://kafka.js.org/docs/admin): create, list, offsets, groups, cluster.
// Changed: the constructor; results are logged so the test can read them.
const kafka = new Letterbox({ clientId: 'my-app' })
const admin = kafka.admin()

// remember to connect and disconnect when you are done
await admin.connect()
console.log('created', await admin.createTopics({
    topics: [{ topic: 'admin-topic', numPartitions: 3 }],
}))
console.log('topics', await admin.listTopics())
console.log('offsets', await admin.fetchTopicOffsets('admin-topic'))

const producer = kafka.producer()
await producer.connect()
await producer.send({ topic: 'admin-topic', messages: [{ partition: 1, value: 'x' }] })
const consumer = kafka.consumer({ groupId: 'admin-group' })
await consumer.connect()
await consumer.subscribe({ topics: ['admin-topic'], fromBeginning: true })
await consumer.run({ eachMessage: async () => {} })
const { groups } = await admin.listGroups()
console.log('groups', groups)
const described = await admin.describeGroups(['admin-group'])
console.log('members', described.groups[0].members.length, described.groups[0].state)
const cluster = await admin.describeCluster()
console.log('brokers', cluster.brokers.length, cluster.controller === cluster.brokers[0].nodeId)
await admin.disconnect()
