package io.modelci.interop;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.Future;

import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.io.JsonEncoder;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * ModelCI-e's wire format as a Java application meets it: Apache Avro's single-object encoding
 * (BinaryMessageEncoder / BinaryMessageDecoder) and Apache Kafka's own client with its default
 * partitioner. Records travel between this program and the Python tests as Avro's JSON encoding,
 * one per line, so any schema can be checked without generated classes.
 *
 * <pre>
 * fingerprint SCHEMA...                      hex of the 8 header bytes Java writes, per SCHEMA
 * encode SCHEMA            stdin: JSON lines  stdout: hex of the single-object bytes
 * decode SCHEMA [OLDER...] stdin: hex lines   stdout: JSON lines (or "error: ..." per line)
 * produce BOOTSTRAP TOPIC SCHEMA  stdin: key TAB JSON   stdout: partition per record
 * consume BOOTSTRAP TOPIC COUNT SCHEMA [OLDER...]  stdout: partition TAB key TAB JSON
 * </pre>
 */
public final class Interop {
    private Interop() {}

    public static void main(String[] args) throws Exception {
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        switch (args[0]) {
            case "fingerprint" -> {
                for (int i = 1; i < args.length; i++) {  // the header: the 64-bit value, little-endian
                    out.println(HexFormat.of().formatHex(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN)
                            .putLong(SchemaNormalization.parsingFingerprint64(schema(args[i]))).array()));
                }
            }
            case "encode" -> encode(schema(args[1]), out);
            case "decode" -> decode(decoder(args, 1), schema(args[1]), out);
            case "produce" -> produce(args[1], args[2], schema(args[3]), out);
            case "consume" -> consume(args[1], args[2], Integer.parseInt(args[3]), decoder(args, 4), schema(args[4]), out);
            default -> throw new IllegalArgumentException("unknown command " + args[0]);
        }
    }

    private static Schema schema(String path) throws IOException {
        return new Schema.Parser().parse(new File(path));
    }

    /** A decoder reading with the first schema and resolving records written with the others. */
    private static BinaryMessageDecoder<GenericRecord> decoder(String[] args, int first) throws IOException {
        BinaryMessageDecoder<GenericRecord> dec = new BinaryMessageDecoder<>(GenericData.get(), schema(args[first]));
        for (int i = first + 1; i < args.length; i++) {
            dec.addSchema(schema(args[i]));
        }
        return dec;
    }

    private static List<String> lines() throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        List<String> all = new ArrayList<>();
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            if (!line.isEmpty()) {
                all.add(line);
            }
        }
        return all;
    }

    private static GenericRecord fromJson(Schema schema, String json) throws IOException {
        return new GenericDatumReader<GenericRecord>(schema).read(null, DecoderFactory.get().jsonDecoder(schema, json));
    }

    private static String toJson(Schema schema, GenericRecord record) throws IOException {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        JsonEncoder enc = EncoderFactory.get().jsonEncoder(schema, buf);
        new GenericDatumWriter<GenericRecord>(schema).write(record, enc);
        enc.flush();
        return buf.toString(StandardCharsets.UTF_8);
    }

    private static void encode(Schema schema, PrintStream out) throws IOException {
        BinaryMessageEncoder<GenericRecord> enc = new BinaryMessageEncoder<>(GenericData.get(), schema);
        for (String line : lines()) {
            ByteBuffer bytes = enc.encode(fromJson(schema, line));
            byte[] raw = new byte[bytes.remaining()];
            bytes.get(raw);
            out.println(HexFormat.of().formatHex(raw));
        }
    }

    private static void decode(BinaryMessageDecoder<GenericRecord> dec, Schema reader, PrintStream out) throws IOException {
        for (String line : lines()) {
            try {
                out.println(toJson(reader, dec.decode(HexFormat.of().parseHex(line))));
            } catch (Exception e) {  // one line per record, so the caller sees which failed and why
                out.println("error: " + e.getClass().getSimpleName() + ": " + e.getMessage());
            }
        }
    }

    private static void produce(String bootstrap, String topic, Schema schema, PrintStream out) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4");  // as the project's producers
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        BinaryMessageEncoder<GenericRecord> enc = new BinaryMessageEncoder<>(GenericData.get(), schema);
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(p)) {
            for (String line : lines()) {
                String[] kv = line.split("\t", 2);
                ByteBuffer bytes = enc.encode(fromJson(schema, kv[1]));
                byte[] raw = new byte[bytes.remaining()];
                bytes.get(raw);
                sent.add(producer.send(new ProducerRecord<>(topic, kv[0], raw)));
            }
            producer.flush();
            for (Future<RecordMetadata> f : sent) {
                out.println(f.get().partition());
            }
        }
    }

    private static void consume(String bootstrap, String topic, int count, BinaryMessageDecoder<GenericRecord> dec,
                                Schema reader, PrintStream out) throws IOException {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, "interop-" + UUID.randomUUID());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        int seen = 0;
        try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(p)) {
            consumer.subscribe(List.of(topic));
            while (seen < count && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    out.println(r.partition() + "\t" + r.key() + "\t" + toJson(reader, dec.decode(r.value())));
                    seen++;
                }
            }
        }
        if (seen < count) {
            throw new IllegalStateException("read " + seen + " of " + count + " records within 60 s");
        }
    }
}
