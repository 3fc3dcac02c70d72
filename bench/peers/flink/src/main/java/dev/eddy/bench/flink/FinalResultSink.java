package dev.eddy.bench.flink;

import java.io.BufferedWriter;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.types.Row;
import org.apache.flink.types.RowKind;

/**
 * A sink for the changelog of a query (Flink's toChangelogStream) that writes the query's final
 * result: +I and +U add a row, -U and -D remove an equal one, and at the end of the input the rows
 * left are written to a CSV file with a header row, sorted, one line per row (a row held twice is
 * written twice). Fields: NULL as an empty field, TIMESTAMP as 'YYYY-MM-DD HH:MM:SS.mmm',
 * DECIMAL in plain notation, the rest by toString; a field holding a comma, quote, CR or LF is
 * quoted (RFC 4180).
 *
 * <p>Run it with parallelism 1: then every change of one row reaches it in the order the upstream
 * subtask emitted it. Its rows live in memory, not in Flink state (the caller disables restarts).
 * A retraction of a row it does not hold fails the job: the changelog would have been misread.
 */
final class FinalResultSink implements Sink<Row> {
    private static final long serialVersionUID = 1L;
    static final DateTimeFormatter TS = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss.SSS");

    private final String path;
    private final ArrayList<String> columns;

    /**
     * @param path the CSV file to write (replaced)
     * @param columns the header row's column names, in the order of the rows' fields
     */
    FinalResultSink(String path, List<String> columns) {
        this.path = path;
        this.columns = new ArrayList<>(columns);
    }

    @Override
    public SinkWriter<Row> createWriter(WriterInitContext context) {
        return new Writer(path, columns);
    }

    private static final class Writer implements SinkWriter<Row> {
        private final String path;
        private final List<String> columns;
        private final Map<String, Long> counts = new HashMap<>();
        private final StringBuilder sb = new StringBuilder();

        Writer(String path, List<String> columns) {
            this.path = path;
            this.columns = columns;
        }

        @Override
        public void write(Row r, Context context) throws IOException {
            String line = csvLine(r);
            RowKind k = r.getKind();
            if (k == RowKind.INSERT || k == RowKind.UPDATE_AFTER) {
                counts.merge(line, 1L, Long::sum);
                return;
            }
            Long c = counts.get(line);
            if (c == null) {
                throw new IOException(
                        "the changelog retracts (" + k.shortString() + ") a row it never inserted: "
                                + line);
            }
            if (c == 1) {
                counts.remove(line);
            } else {
                counts.put(line, c - 1);
            }
        }

        @Override
        public void flush(boolean endOfInput) throws IOException {
            if (!endOfInput) {
                return;
            }
            Path p = Path.of(path);
            try (BufferedWriter w = Files.newBufferedWriter(p, StandardCharsets.UTF_8)) {
                w.write(String.join(",", columns));
                w.write('\n');
                for (Map.Entry<String, Long> e : new TreeMap<>(counts).entrySet()) {
                    for (long i = 0; i < e.getValue(); i++) {
                        w.write(e.getKey());
                        w.write('\n');
                    }
                }
            }
        }

        @Override
        public void close() {}

        private String csvLine(Row r) {
            sb.setLength(0);
            for (int i = 0; i < r.getArity(); i++) {
                if (i > 0) {
                    sb.append(',');
                }
                Object v = r.getField(i);
                String s;
                if (v == null) {
                    s = "";
                } else if (v instanceof LocalDateTime) {
                    s = TS.format((LocalDateTime) v);
                } else if (v instanceof BigDecimal) {
                    s = ((BigDecimal) v).toPlainString();
                } else {
                    s = v.toString();
                }
                if (s.indexOf(',') >= 0 || s.indexOf('"') >= 0 || s.indexOf('\n') >= 0
                        || s.indexOf('\r') >= 0) {
                    s = '"' + s.replace("\"", "\"\"") + '"';
                }
                sb.append(s);
            }
            return sb.toString();
        }
    }
}
