-- 100_sms_segments — GSM-7 / UCS-2 encoding and segment counts: docs/protocols.md#sms-segments.
-- S(n): the first n characters of 1234567890 repeated; "with X first": its first character replaced by X.
CREATE FUNCTION pg_temp.s(n int, first text DEFAULT NULL) RETURNS text LANGUAGE sql AS $$
    SELECT COALESCE(first, '') || substr(repeat('1234567890', 200), CASE WHEN first IS NULL THEN 1 ELSE 2 END,
                                         n - CASE WHEN first IS NULL THEN 0 ELSE 1 END)
$$;
SELECT v.body_desc, s.encoding, s.segments, s.units
  FROM (VALUES
    (1, 'S(160)', pg_temp.s(160)),
    (2, 'S(161)', pg_temp.s(161)),
    (3, 'S(307)', pg_temp.s(307)),
    (4, 'S(159) with { first', pg_temp.s(159, '{')),
    (5, 'S(160) with { first', pg_temp.s(160, '{')),
    (6, 'S(69) with 😜 first', pg_temp.s(69, '😜')),
    (7, 'S(70) with 😜 first', pg_temp.s(70, '😜')),
    (8, 'S(134) with 😜 first', pg_temp.s(134, '😜')),
    (9, 'S(67) with 🇮🇹 first', '🇮🇹' || substr(pg_temp.s(67), 2)),
    (10, 'S(68) with 🇮🇹 first', '🇮🇹' || substr(pg_temp.s(68), 2)),
    (11, '😀 + 68 × ]', '😀' || repeat(']', 68)),
    (12, '😀 + 69 × ]', '😀' || repeat(']', 69))
  ) v(i, body_desc, body), LATERAL darkspere.sms_segments(v.body) s
 ORDER BY v.i;
-- Each extension character costs 2 septets: followed by S(158) it fills one segment, by S(159) two.
SELECT c, (darkspere.sms_segments(c || pg_temp.s(158))).*, (darkspere.sms_segments(c || pg_temp.s(159))).segments AS segments_with_s159
  FROM unnest(ARRAY['|', '^', '€', '{', '}', '[', ']', '~', '\']) c;
-- Characters outside GSM-7 make the whole message UCS-2: 70 fit one segment, 71 need two.
SELECT c, (darkspere.sms_segments(repeat(c, 70))).*, (darkspere.sms_segments(repeat(c, 71))).segments AS segments_with_71
  FROM unnest(ARRAY['Á', 'Ú', 'ú', 'ç', 'í', 'Í', 'ó', 'Ó']) c;
-- Segment boundaries (rule 7): GSM-7 160 / 306 / 459, UCS-2 70 / 134 / 201.
SELECT n, (darkspere.sms_segments(repeat('a', n))).segments AS gsm7, (darkspere.sms_segments(repeat('ж', n))).segments AS ucs2
  FROM unnest(ARRAY[1, 70, 71, 134, 135, 160, 161, 201, 202, 306, 307, 459, 460]) n;
-- The basic set is 1 septet each, including £ ¥ è é ù ì ò Ç Ø ø Å å Δ _ Φ Γ Λ Ω Π Ψ Σ Θ Ξ Æ æ ß É ¤ ¡ Ä Ö Ñ Ü § ¿ ä ö ñ ü à.
SELECT (darkspere.sms_segments('@£$¥èéùìòÇ' || E'\n' || 'Øø' || E'\r' || 'ÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&''()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà')).*;
-- form feed is an extension character (2 septets); backtick is not GSM-7 at all.
SELECT (darkspere.sms_segments(E'\f')).*;
SELECT (darkspere.sms_segments('`')).*;
-- The empty body is one GSM-7 segment of nothing; NULL in, NULL out (STRICT).
SELECT (darkspere.sms_segments('')).*;
SELECT (darkspere.sms_segments(NULL)).*;
